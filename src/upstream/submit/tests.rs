//! The submit call: body, answers, retries after a lost outcome.
