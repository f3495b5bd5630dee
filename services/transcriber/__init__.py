"""The transcriber: one loaded model, a few concurrent slots."""
