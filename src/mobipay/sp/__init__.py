"""Monternet service-provider governance (移动梦网): SPs and their services, subscriptions billed
after the subscriber confirms, the red and yellow cards and the penalty ladder, SP settlement."""
