"""Networks painterly trains and runs: style transformers (Johnson, conditional instance norm)."""
