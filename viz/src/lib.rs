//! Plotting for heal: typed data in, PNG out.
