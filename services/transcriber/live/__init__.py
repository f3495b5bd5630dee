"""Live recognition on a transcriber: audio in as it arrives, interim and final results out."""
