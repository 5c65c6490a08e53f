"""Call records: the model the reader returns, the recorder that writes it, queries."""
