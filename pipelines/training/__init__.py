"""Multi-algorithm training: registry, metrics, evaluation, leaderboard."""
