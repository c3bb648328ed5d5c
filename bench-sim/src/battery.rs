//! The bench battery: a 12.8 V LiFePO4 pack charged by the panel through an MPPT controller and
//! drained by the load.

/// State of charge never leaves 0-100 %; a failed pack keeps a few percent of its capacity.
#[derive(Debug, Clone, PartialEq)]
pub struct Battery {
    capacity_wh: f64,
    /// State of charge, 0-1.
    soc: f64,
    /// Last net power into the pack, W (negative when discharging).
    net_w: f64,
    failed: bool,
}

/// Charge path efficiency (controller and cell).
const CHARGE_EFFICIENCY: f64 = 0.92;
/// Discharge path efficiency.
const DISCHARGE_EFFICIENCY: f64 = 0.95;
/// Fraction of the capacity a failed pack keeps.
const FAILED_CAPACITY: f64 = 0.03;

impl Battery {
    /// A pack of `capacity_wh` at `soc_pct` percent.
    pub fn new(capacity_wh: f64, soc_pct: f64) -> Self {
        Self {
            capacity_wh: capacity_wh.max(1.0),
            soc: (soc_pct / 100.0).clamp(0.0, 1.0),
            net_w: 0.0,
            failed: false,
        }
    }

    /// Moves `dt_s` seconds forward with `solar_w` available from the panel and `load_w` drawn.
    /// Returns the power the load actually got, W: zero once the pack is empty and the sun can't
    /// cover it (the controller's low-voltage disconnect).
    pub fn step(&mut self, solar_w: f64, load_w: f64, dt_s: f64) -> f64 {
        let capacity = self.effective_capacity_wh();
        let surplus = solar_w - load_w;
        let (net_w, served) = if surplus >= 0.0 {
            // The MPPT controller throttles the panel when the pack is full.
            let room_wh = (1.0 - self.soc) * capacity;
            let charge_w = (surplus * CHARGE_EFFICIENCY).min(room_wh * 3600.0 / dt_s.max(1e-9));
            (charge_w, load_w)
        } else {
            let deficit_w = -surplus / DISCHARGE_EFFICIENCY;
            let available_w = self.soc * capacity * 3600.0 / dt_s.max(1e-9);
            if deficit_w <= available_w {
                (-deficit_w, load_w)
            } else {
                (-available_w, solar_w + available_w * DISCHARGE_EFFICIENCY)
            }
        };
        self.net_w = net_w;
        self.soc = (self.soc + net_w * dt_s / 3600.0 / capacity).clamp(0.0, 1.0);
        served
    }

    /// State of charge, percent (0-100).
    pub fn soc_pct(&self) -> f64 {
        self.soc * 100.0
    }

    /// Terminal voltage: the LiFePO4 open-circuit curve (flat in the middle, steep at the ends)
    /// plus a little rise while charging and sag under load.
    pub fn voltage(&self) -> f64 {
        const CURVE: [(f64, f64); 6] = [
            (0.0, 10.0),
            (0.05, 12.0),
            (0.2, 12.9),
            (0.8, 13.25),
            (0.95, 13.4),
            (1.0, 13.6),
        ];
        let soc = self.soc;
        let ocv = CURVE
            .windows(2)
            .find(|w| soc <= w[1].0)
            .map(|w| {
                let ((s0, v0), (s1, v1)) = (w[0], w[1]);
                v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
            })
            .unwrap_or(13.6);
        let internal_ohm = if self.failed { 0.4 } else { 0.02 };
        (ocv + self.net_w / 12.8 * internal_ohm).clamp(0.0, 14.6)
    }

    /// The pack fails: it keeps a few percent of its capacity from now on.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn effective_capacity_wh(&self) -> f64 {
        if self.failed {
            self.capacity_wh * FAILED_CAPACITY
        } else {
            self.capacity_wh
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_discharges_with_losses() {
        let mut b = Battery::new(1000.0, 50.0);
        // 100 W surplus for an hour: +92 Wh.
        b.step(110.0, 10.0, 3600.0);
        assert!((b.soc_pct() - 59.2).abs() < 1e-9, "{}", b.soc_pct());
        // 95 W deficit for an hour: -100 Wh.
        let served = b.step(0.0, 95.0, 3600.0);
        assert_eq!(served, 95.0);
        assert!((b.soc_pct() - 49.2).abs() < 1e-9, "{}", b.soc_pct());
    }

    #[test]
    fn stays_within_bounds_and_cuts_the_load_when_empty() {
        let mut b = Battery::new(100.0, 1.0);
        let served = b.step(0.0, 50.0, 3600.0);
        assert_eq!(b.soc_pct(), 0.0);
        assert!(served < 1.0, "served {served}");
        b.step(2000.0, 0.0, 86_400.0);
        assert_eq!(b.soc_pct(), 100.0);
        assert!(b.voltage() > 13.0 && b.voltage() < 14.6);
    }

    #[test]
    fn a_failed_pack_drains_fast() {
        let mut healthy = Battery::new(1000.0, 80.0);
        let mut failed = Battery::new(1000.0, 80.0);
        failed.fail();
        for _ in 0..10 {
            healthy.step(0.0, 10.0, 60.0);
            failed.step(0.0, 10.0, 60.0);
        }
        assert!(healthy.soc_pct() > 79.0);
        assert!(failed.soc_pct() < 75.0, "{}", failed.soc_pct());
    }

    #[test]
    fn voltage_rises_with_charge() {
        let v = |soc| Battery::new(1000.0, soc).voltage();
        assert!(v(0.0) < v(5.0) && v(5.0) < v(50.0) && v(50.0) < v(100.0));
        assert!((v(50.0) - 13.04).abs() < 0.05, "{}", v(50.0));
    }
}
