"""The trained networks and their folders: appearance embedding, EdgeMPNN, the tracker bundle."""
