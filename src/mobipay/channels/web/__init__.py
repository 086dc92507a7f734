"""Server-rendered web pages (Jinja2): the hosted cashier so far; the mobile web wallet and the console come next."""
