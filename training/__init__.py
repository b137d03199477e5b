"""Training and evaluation on FER2013: produces the models that `emotion` loads."""
