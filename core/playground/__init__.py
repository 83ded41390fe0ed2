"""The Playground feature: the draft, the matrix of cells, the compare (draft, matrix, compare, tools; one
matrix module before the split), the prompt library (library), "View code" (codegen). No other feature imported."""
