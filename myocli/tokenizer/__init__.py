"""The motion tokenizer (tokenizer/NAME): the VQ-VAE (model.py), using a trained one (codec.py) and training it (train.py)."""
