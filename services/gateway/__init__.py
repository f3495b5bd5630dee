"""The public edge: sayit.speech.v1.SpeechService."""
