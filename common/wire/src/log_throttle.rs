//! One rule for events that can repeat without end (a dropped message, a
//! lost row, a group starting over): the first ten are logged, then every
//! power of two, each with its count so far. A misconfigured or hostile
//! sender cannot flood a log, and a fault that persists still shows.

/// Whether the `n`th event (counting from 1) of a kind is logged.
pub fn worth_logging(n: u64) -> bool {
    n <= 10 || n.is_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ten_then_powers_of_two() {
        let logged: Vec<u64> = (1..=300).filter(|&n| worth_logging(n)).collect();
        assert_eq!(logged, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 32, 64, 128, 256]);
    }
}
