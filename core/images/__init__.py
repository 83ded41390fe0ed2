"""The Images feature: image models, parameters, cost, generation and edits through the gate (generation), and
the gallery of saved images (gallery). Imports the layers below, no other feature."""
