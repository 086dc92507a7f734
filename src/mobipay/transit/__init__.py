"""Transit one-card (移动公交一卡通): operators, lines, validators, fares as data, offline taps, clearing."""
