"""End-to-end on the long-audio mesh (AOF Redis, three workers): chunks, crashes, repeats."""
