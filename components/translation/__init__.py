"""Translation: an encoder-decoder RNN with attention, greedy and beam search inside the served graph."""
