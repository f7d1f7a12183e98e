"""Step 4: a user's list from their state and the shared models.

Candidates, scoring, the diversity cap, reasons, experiment arms and the encoded
recommendation v1 document. Pure: what a list *is*, never when or where it is sent.
"""
