"""Rural e-commerce: village payment service points (agents), float and commissions, a marketplace with escrow."""
