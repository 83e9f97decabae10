"""Puts the repository root on sys.path so tests import configs/ like run_train.py does."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
