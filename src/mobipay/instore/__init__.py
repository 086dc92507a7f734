"""In-store payments: the merchant-presented QR code a shop shows at its till (EMV QRCPS MPM)."""
