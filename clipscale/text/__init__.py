"""Text: SentencePiece tokenizer and CLIPA text token reduction."""
