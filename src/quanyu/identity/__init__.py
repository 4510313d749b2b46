"""Identity resolution: identifiers, the identity graph, profiles."""
