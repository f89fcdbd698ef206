"""The echo service: a peer that answers every call by sending back what it hears."""

ECHO_NAME = "echo"  # reserved on every server: nobody else may register it
