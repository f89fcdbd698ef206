"""The session layer both faces share: settings in, a connected phone out."""
