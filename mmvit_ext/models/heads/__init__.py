"""Classification heads and classifiers that a family needs of its own (mmpretrain has the rest)."""
