"""Local fake servers for tests: they listen on 127.0.0.1 only and never reach the network."""
