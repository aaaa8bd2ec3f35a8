"""Reproduces every model of the bundle, and simulates CTC data to train and test on."""
