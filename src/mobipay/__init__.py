"""mobipay: an operator-grade mobile payment and mobile-commerce platform.

One double-entry ledger in the middle (``mobipay.ledger``), products as bounded contexts
around it, channels (HTTP, SMS, voice, web) as thin translators at the edges.
"""

__version__ = "0.1.0"
