"""Deep-learning and experimental use cases: the polynomial-derivative experiment, vision, text, GMM.

Importing this package (or ``pipelines.deep.poly``'s numpy parts) does not import torch: every
torch-using class is built on first use.
"""
