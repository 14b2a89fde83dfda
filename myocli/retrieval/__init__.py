"""The text-motion retrieval evaluator (retrieval/NAME): the model (model.py), scoring motions with a
trained one (evaluator.py) and training it (train.py)."""
