//! Forecasts of when each model is needed next: learnt probabilities for `smart`, the known
//! future for `oracle`. Both answer the same questions, so one residency algorithm serves both.

use std::cell::RefCell;

use crate::speculation::{Demand, DemandTime};
use crate::workload::Workload;

/// How many turns ahead the smart forecast looks.
const HORIZON_TURNS: usize = 8;
/// How much a use one turn later is worth relative to one turn sooner: Belady's "furthest
/// next use" becomes "lowest discounted chance of use".
const DISCOUNT: f64 = 0.75;
/// Probability mass below which a path is dropped (keeps the propagation sparse).
const NEGLIGIBLE: f64 = 1e-9;
/// The share of a later turn's expected length a preload may count on: turn lengths vary.
const LATER_TURN_SHARE: f64 = 0.5;

/// What the residency algorithm asks about the future, whichever way it is known.
pub(crate) trait Outlook {
    /// How much keeping the runner resident is worth: higher means needed sooner or likelier.
    fn priority(&self, runner: usize) -> f64;
    /// Probability that the runner is needed at all within the outlook.
    fn use_probability(&self, runner: usize) -> f64;
    /// Expected seconds from the start of the current turn's generation to the start of the
    /// runner's next use, given that it is used; infinite when it is not expected.
    fn gap_seconds(&self, runner: usize) -> f64;
    /// The current turn's expected length once its model is resident.
    fn turn_seconds(&self) -> f64;
    /// The probability that `rival` is needed before `candidate` (or without it).
    fn needed_before(&self, candidate: usize, rival: usize) -> f64;
    /// The same as [`Outlook::needed_before`], estimated from each runner's chance and
    /// expected time of first use alone (no race of its own): cheap enough to ask for every
    /// pair of models.
    fn likely_before(&self, candidate: usize, rival: usize) -> f64;
    /// Expected seconds of the candidate's load that a preload starting `offset` seconds into
    /// the current turn hides (on paths where it stays resident until used), minus what a
    /// preload in the turn just before its use would hide anyway: the advantage of loading it
    /// now over waiting, which leaves the loader and the memory free meanwhile.
    fn preload_saving(&self, candidate: usize, load_seconds: f64, offset: f64) -> f64;
    /// For the runners not resident (`pending[runner]`): the chance that each is the first of
    /// them a coming turn needs, and when; what a preload holding the loader would delay.
    fn load_demand(&self, pending: &[bool]) -> Vec<Demand>;
    /// A few words on the runner's next use, for plan reasons.
    fn describe(&self, runner: usize) -> String;
    /// Whether preloads follow the order of next use strictly, stopping at the first model
    /// that cannot fit yet (right when the order is certain; with mere odds, a later model
    /// that fits now is worth loading).
    fn strict_order(&self) -> bool;
}

/// The learnt forecast: a Markov chain over speakers with learnt edge probabilities and turn
/// lengths, followed [`HORIZON_TURNS`] turns ahead.
pub(crate) struct Forecast<'a> {
    workload: &'a Workload,
    speaker: usize,
    first: Vec<f64>,
    discounted: Vec<f64>,
    gap: Vec<f64>,
    /// Scratch space reused by every race of this forecast.
    scratch: RefCell<Propagation>,
}

impl<'a> Forecast<'a> {
    pub(crate) fn new(workload: &'a Workload, speaker: usize) -> Forecast<'a> {
        let runner_count = workload.runners.len();
        let mut first = vec![0.0; runner_count];
        let mut discounted = vec![0.0; runner_count];
        let mut gap = vec![f64::INFINITY; runner_count];
        let time = first_uses(workload, speaker, &mut first, &mut discounted);
        for runner in 0..runner_count {
            if first[runner] > NEGLIGIBLE {
                gap[runner] = time[runner] / first[runner];
            }
        }
        let propagation = Propagation::new(workload.agents().len());
        Forecast {
            workload,
            speaker,
            first,
            discounted,
            gap,
            scratch: RefCell::new(propagation),
        }
    }
}

impl<'a> Forecast<'a> {
    /// A forecast that answers only [`Outlook::preload_saving`] and
    /// [`Outlook::needed_before`] (each a race of its own), without the first-use
    /// propagation every other question needs: what judging a loading preload asks.
    pub(crate) fn races_only(workload: &'a Workload, speaker: usize) -> Forecast<'a> {
        Forecast {
            workload,
            speaker,
            first: Vec::new(),
            discounted: Vec::new(),
            gap: Vec::new(),
            scratch: RefCell::new(Propagation::new(workload.agents().len())),
        }
    }
}

impl Forecast<'_> {
    fn race(&self, candidate: usize, rival: Option<usize>, load_seconds: f64, offset: f64) -> Race {
        let workload = self.workload;
        let contender: Vec<Option<usize>> = workload
            .agent_runner
            .iter()
            .map(|runner| match *runner {
                Some(runner) if runner == candidate => Some(0),
                Some(runner) if Some(runner) == rival => Some(1),
                _ => None,
            })
            .collect();
        // A preload only survives turns whose models can be resident beside it. Only the
        // hidden load asks about survival: a race against a rival leaves every turn open.
        let mut propagation = self.scratch.borrow_mut();
        propagation.compatible.clear();
        if rival.is_none() {
            let beside: Vec<bool> = (0..workload.runners.len())
                .map(|runner| workload.coexist(candidate, runner))
                .collect();
            propagation
                .compatible
                .extend(workload.agent_runner.iter().map(|runner| match *runner {
                    None => true,
                    Some(runner) => beside[runner],
                }));
        }
        propagation.load_seconds = load_seconds;
        propagation.offset = offset;
        propagation.run(workload, self.speaker, &contender, 2)
    }
}

impl Outlook for Forecast<'_> {
    fn priority(&self, runner: usize) -> f64 {
        self.discounted[runner]
    }

    fn use_probability(&self, runner: usize) -> f64 {
        self.first[runner]
    }

    fn gap_seconds(&self, runner: usize) -> f64 {
        self.gap[runner]
    }

    fn turn_seconds(&self) -> f64 {
        self.workload.turn_seconds[self.speaker]
    }

    fn needed_before(&self, candidate: usize, rival: usize) -> f64 {
        let race = self.race(candidate, Some(rival), 0.0, 0.0);
        race.first[1]
    }

    /// The two first uses taken as independent, each after an exponential wait with its
    /// expected gap: the rival comes first if the candidate is not needed, or with the
    /// odds of the race of two such waits.
    fn likely_before(&self, candidate: usize, rival: usize) -> f64 {
        let (rival_p, candidate_p) = (self.first[rival], self.first[candidate]);
        if rival_p <= NEGLIGIBLE {
            return 0.0;
        }
        let (rival_gap, candidate_gap) = (self.gap[rival], self.gap[candidate]);
        let first = if candidate_gap.is_finite() && rival_gap.is_finite() {
            if rival_gap + candidate_gap > 0.0 {
                candidate_gap / (rival_gap + candidate_gap)
            } else {
                0.5
            }
        } else {
            1.0
        };
        rival_p * ((1.0 - candidate_p) + candidate_p * first)
    }

    fn preload_saving(&self, candidate: usize, load_seconds: f64, offset: f64) -> f64 {
        let race = self.race(candidate, None, load_seconds, offset);
        race.hidden_now - race.hidden_later
    }

    fn strict_order(&self) -> bool {
        false
    }

    fn load_demand(&self, pending: &[bool]) -> Vec<Demand> {
        let workload = self.workload;
        let contender: Vec<Option<usize>> = workload
            .agent_runner
            .iter()
            .map(|runner| runner.filter(|&runner| pending[runner]))
            .collect();
        let mut propagation = self.scratch.borrow_mut();
        propagation.compatible.clear();
        propagation.load_seconds = 0.0;
        propagation.offset = 0.0;
        let race = propagation.run(workload, self.speaker, &contender, pending.len());
        (0..pending.len())
            .filter(|&runner| race.first[runner] > NEGLIGIBLE)
            .map(|runner| Demand {
                runner,
                probability: race.first[runner],
                at: DemandTime::Mean(race.time[runner] / race.first[runner]),
            })
            .collect()
    }

    fn describe(&self, runner: usize) -> String {
        if self.first[runner] <= NEGLIGIBLE {
            return format!("not expected within {HORIZON_TURNS} turns");
        }
        format!(
            "p={:.2} within {HORIZON_TURNS} turns, in ~{:.0} s",
            self.first[runner], self.gap[runner]
        )
    }
}

/// Every runner's first use at once: one chain per runner (a path ends at the first turn on
/// that runner), laid out agent-major so the inner loop over runners is contiguous. Fills
/// `first` and `discounted` and returns the probability-weighted seconds to first use.
fn first_uses(
    workload: &Workload,
    speaker: usize,
    first: &mut [f64],
    discounted: &mut [f64],
) -> Vec<f64> {
    let runners = workload.runners.len();
    let agents = workload.agents().len();
    let mut time_to_use = vec![0.0; runners];
    let mut mass = vec![0.0; agents * runners];
    let mut time = vec![0.0; agents * runners];
    let mut next_mass = vec![0.0; agents * runners];
    let mut next_time = vec![0.0; agents * runners];
    let speaker_seconds = workload.turn_seconds[speaker];
    for edge in &workload.out[speaker] {
        if let Some(agent) = edge.to {
            for runner in 0..runners {
                mass[agent * runners + runner] += edge.probability;
                time[agent * runners + runner] += edge.probability * speaker_seconds;
            }
        }
    }
    let mut weight = 1.0;
    for _ in 0..HORIZON_TURNS {
        next_mass.fill(0.0);
        next_time.fill(0.0);
        let mut alive = false;
        for agent in 0..agents {
            let row = agent * runners..(agent + 1) * runners;
            if let Some(runner) = workload.agent_runner[agent] {
                let index = agent * runners + runner;
                first[runner] += mass[index];
                discounted[runner] += mass[index] * weight;
                time_to_use[runner] += time[index];
                mass[index] = 0.0;
                time[index] = 0.0;
            }
            if mass[row.clone()].iter().all(|&mass| mass <= NEGLIGIBLE) {
                continue;
            }
            let seconds = workload.turn_seconds[agent];
            for edge in &workload.out[agent] {
                let Some(next) = edge.to else { continue };
                alive = true;
                let target = next * runners..(next + 1) * runners;
                let probability = edge.probability;
                for ((next_mass, next_time), (&mass, &time)) in next_mass[target.clone()]
                    .iter_mut()
                    .zip(&mut next_time[target])
                    .zip(mass[row.clone()].iter().zip(&time[row.clone()]))
                {
                    *next_mass += probability * mass;
                    *next_time += probability * (time + seconds * mass);
                }
            }
        }
        std::mem::swap(&mut mass, &mut next_mass);
        std::mem::swap(&mut time, &mut next_time);
        weight *= DISCOUNT;
        if !alive {
            break;
        }
    }
    time_to_use
}

/// Scratch space for following the chain; reused across races of one forecast.
struct Propagation {
    mass: Vec<f64>,
    time: Vec<f64>,
    /// Probability-weighted seconds of the contender's load that the turn before could hide.
    later: Vec<f64>,
    /// The part of `mass` on which a preload made now is still resident.
    survive: Vec<f64>,
    next_mass: Vec<f64>,
    next_time: Vec<f64>,
    next_later: Vec<f64>,
    next_survive: Vec<f64>,
    /// Per agent: whether its model can be resident beside contender 0 (empty: all can).
    compatible: Vec<bool>,
    /// The load whose hiding is measured (0 when not needed).
    load_seconds: f64,
    /// When the preload would start, in seconds into the current turn.
    offset: f64,
}

/// Who of a set of contenders is needed first, within the horizon.
struct Race {
    /// Probability that each contender is the first needed.
    first: Vec<f64>,
    /// The same, each turn's share discounted by [`DISCOUNT`] per turn of distance.
    discounted: Vec<f64>,
    /// Probability-weighted seconds until that first use.
    time: Vec<f64>,
    /// Expected seconds of contender 0's load hidden by a preload now.
    hidden_now: f64,
    /// Expected seconds of it a preload in the turn just before its use would hide.
    hidden_later: f64,
}

impl Propagation {
    fn new(agent_count: usize) -> Propagation {
        Propagation {
            mass: vec![0.0; agent_count],
            time: vec![0.0; agent_count],
            later: vec![0.0; agent_count],
            survive: vec![0.0; agent_count],
            next_mass: vec![0.0; agent_count],
            next_time: vec![0.0; agent_count],
            next_later: vec![0.0; agent_count],
            next_survive: vec![0.0; agent_count],
            compatible: Vec::new(),
            load_seconds: 0.0,
            offset: 0.0,
        }
    }

    /// Follows every path from `speaker`'s turn, absorbing a path at the first turn whose
    /// agent belongs to a contender (`contender[agent]`).
    fn run(
        &mut self,
        workload: &Workload,
        speaker: usize,
        contender: &[Option<usize>],
        contenders: usize,
    ) -> Race {
        let mut race = Race {
            first: vec![0.0; contenders],
            discounted: vec![0.0; contenders],
            time: vec![0.0; contenders],
            hidden_now: 0.0,
            hidden_later: 0.0,
        };
        self.mass.fill(0.0);
        self.time.fill(0.0);
        self.later.fill(0.0);
        self.survive.fill(0.0);
        let speaker_seconds = workload.turn_seconds[speaker];
        for edge in &workload.out[speaker] {
            if let Some(agent) = edge.to {
                self.mass[agent] += edge.probability;
                self.time[agent] += edge.probability * speaker_seconds;
                self.survive[agent] += edge.probability;
            }
        }
        let mut weight = 1.0;
        for _ in 0..HORIZON_TURNS {
            self.next_mass.fill(0.0);
            self.next_time.fill(0.0);
            self.next_later.fill(0.0);
            self.next_survive.fill(0.0);
            let mut alive = false;
            for (agent, &mass) in self.mass.iter().enumerate() {
                if mass <= NEGLIGIBLE {
                    continue;
                }
                if let Some(index) = contender[agent] {
                    race.first[index] += mass;
                    race.discounted[index] += mass * weight;
                    race.time[index] += self.time[agent];
                    if index == 0 {
                        let mean_time = self.time[agent] / mass;
                        race.hidden_now += self.survive[agent]
                            * (mean_time - self.offset).clamp(0.0, self.load_seconds);
                        race.hidden_later += self.later[agent];
                    }
                    continue;
                }
                let seconds = workload.turn_seconds[agent];
                let elapsed = self.time[agent] + mass * seconds;
                let hideable = mass * self.load_seconds.min(LATER_TURN_SHARE * seconds);
                let survive = if self.compatible.get(agent).copied().unwrap_or(true) {
                    self.survive[agent]
                } else {
                    0.0
                };
                for edge in &workload.out[agent] {
                    if let Some(next) = edge.to {
                        self.next_mass[next] += mass * edge.probability;
                        self.next_time[next] += elapsed * edge.probability;
                        self.next_later[next] += hideable * edge.probability;
                        self.next_survive[next] += survive * edge.probability;
                        alive = true;
                    }
                }
            }
            std::mem::swap(&mut self.mass, &mut self.next_mass);
            std::mem::swap(&mut self.time, &mut self.next_time);
            std::mem::swap(&mut self.later, &mut self.next_later);
            std::mem::swap(&mut self.survive, &mut self.next_survive);
            weight *= DISCOUNT;
            if !alive {
                break;
            }
        }
        race
    }
}

/// The oracle's outlook: the run's actual future, turn by turn.
pub(crate) struct Foresight {
    turn_seconds: f64,
    gap: Vec<f64>,
}

impl Foresight {
    /// `future[0]` is the current turn.
    pub(crate) fn new(workload: &Workload, future: &[(usize, f64)]) -> Foresight {
        let runner_count = workload.runners.len();
        let mut gap = vec![f64::INFINITY; runner_count];
        let turn_seconds = future.first().map_or(0.0, |&(_, seconds)| seconds);
        let mut elapsed = turn_seconds;
        let mut unseen = runner_count;
        for &(agent, seconds) in future.iter().skip(1) {
            if unseen == 0 {
                break;
            }
            if let Some(runner) = workload.agent_runner[agent]
                && gap[runner].is_infinite()
            {
                gap[runner] = elapsed;
                unseen -= 1;
            }
            elapsed += seconds;
        }
        Foresight { turn_seconds, gap }
    }
}

impl Outlook for Foresight {
    fn priority(&self, runner: usize) -> f64 {
        -self.gap[runner]
    }

    fn use_probability(&self, runner: usize) -> f64 {
        if self.gap[runner].is_finite() {
            1.0
        } else {
            0.0
        }
    }

    fn gap_seconds(&self, runner: usize) -> f64 {
        self.gap[runner]
    }

    fn turn_seconds(&self) -> f64 {
        self.turn_seconds
    }

    fn needed_before(&self, candidate: usize, rival: usize) -> f64 {
        if self.gap[rival] < self.gap[candidate] {
            1.0
        } else {
            0.0
        }
    }

    fn likely_before(&self, candidate: usize, rival: usize) -> f64 {
        self.needed_before(candidate, rival)
    }

    /// The oracle preloads as early as memory allows: it never waits for a later turn, since
    /// its evictions never cost a reload it did not foresee.
    fn preload_saving(&self, candidate: usize, load_seconds: f64, offset: f64) -> f64 {
        let gap = self.gap[candidate];
        if gap.is_infinite() {
            return 0.0;
        }
        (gap - offset).clamp(0.0, load_seconds)
    }

    fn strict_order(&self) -> bool {
        true
    }

    fn load_demand(&self, pending: &[bool]) -> Vec<Demand> {
        let first = (0..pending.len())
            .filter(|&runner| pending[runner] && self.gap[runner].is_finite())
            .min_by(|&a, &b| self.gap[a].total_cmp(&self.gap[b]));
        first
            .map(|runner| Demand {
                runner,
                probability: 1.0,
                at: DemandTime::Certain(self.gap[runner]),
            })
            .into_iter()
            .collect()
    }

    fn describe(&self, runner: usize) -> String {
        if self.gap[runner].is_infinite() {
            "not needed again".to_owned()
        } else {
            format!("needed in {:.0} s", self.gap[runner])
        }
    }
}
