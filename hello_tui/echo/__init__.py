"""The echo service: a peer that answers every call by sending back what it hears."""
