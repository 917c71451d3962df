"""Process-level workarounds shared by every step and entry point: Keras 2 (tf_keras) before TensorFlow loads,
an exit that skips TensorFlow's slow teardown but runs the exit handlers, and progress lines for long loops.

Imports only the standard library and TensorFlow; every other package may import it."""
