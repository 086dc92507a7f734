"""Campaigns: bulk disbursements from a funder's campaign account, auditable prize draws with
delivery to the door, and customer segments."""
