"""SayIt's tests: unit tests by package, integration tests of one service, end-to-end meshes."""
