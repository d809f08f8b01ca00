"""Recognizers (speech, music, face) and metrics that read generated media back and measure whether
the emotion and intensity asked for were delivered. Evaluators never import a generator: the
closed loop takes one as an argument. Recognizers land with their media."""
