"""The motion language model (lm/NAME): the T5 and its vocabulary (model.py), prompts, constrained decoding,
generation and evaluation, and its training (train.py)."""
