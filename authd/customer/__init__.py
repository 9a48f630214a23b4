"""Customers at the center: the media an institution's customer holds, and the branch
registrations of HSM tokens and smartcards."""
