"""Lottery tickets sold from the wallet for a lottery centre: games, draws, prizes paid into the wallet."""
