"""End-to-end tests: whole meshes with a private Redis, real workers and the real model."""
