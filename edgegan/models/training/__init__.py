"""Scripts that train the zoo's shipped weights here, reproducibly (CPU, seeded)."""
