"""What the workspace keeps about people and shares, read across every feature: retention and data-subject
requests (privacy), shareable HTML reports (report). Only core.cli and pages import it."""
