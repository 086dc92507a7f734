"""Enterprise one-card (移动企业一卡通): employers, allowance accounts, closed-loop merchants, attendance."""
