"""The journalist API: JSON over HTTP, on a listener (and later an onion service) of its own."""
