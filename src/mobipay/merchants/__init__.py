"""Remote merchants: onboarding, signed checkout API, notifications, refunds, settlement."""
