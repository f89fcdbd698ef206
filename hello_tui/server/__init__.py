"""The rendezvous server: routes calls, hosts rooms, forgets calls when they end."""
