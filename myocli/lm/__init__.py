"""The motion language model in use: prompts, constrained decoding, generation and evaluation."""
