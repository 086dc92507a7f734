"""The group-buy community (聚惠啦): deals per city from group-buy merchants, vouchers bought
from the wallet and held in escrow until the shop consumes them."""
