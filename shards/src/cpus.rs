//! Which CPUs the shards run on: parsing `--cpuset` lists such as `0-3,6` and reading the
//! process's affinity mask, which is the default set.

use std::fmt;
use std::str::FromStr;

/// An ordered, duplicate-free list of CPU ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    pub fn new(mut cpus: Vec<usize>) -> CpuList {
        cpus.sort_unstable();
        cpus.dedup();
        CpuList(cpus)
    }

    /// The CPUs this process may run on (`sched_getaffinity`).
    pub fn from_affinity() -> std::io::Result<CpuList> {
        // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set, and the kernel
        // writes at most size_of::<cpu_set_t>() bytes into it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let cpus = (0..libc::CPU_SETSIZE as usize)
            // SAFETY: `cpu` is below CPU_SETSIZE, the size of the set.
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        Ok(CpuList::new(cpus))
    }

    /// Restricts the calling thread, and the threads it starts from now on, to these CPUs
    /// (`sched_setaffinity`).
    pub fn pin_current_thread(&self) -> std::io::Result<()> {
        // SAFETY: cpu_set_t is plain data; zeroed is a valid empty set. Every id is below
        // CPU_SETSIZE (checked when the list was parsed or read).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in &self.0 {
            assert!(
                cpu < libc::CPU_SETSIZE as usize,
                "CPU {cpu} is out of range"
            );
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: the set lives on this stack for the call; 0 names the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: usize) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }
}

impl FromStr for CpuList {
    type Err = String;

    /// Parses Linux's list format: comma-separated CPU ids and inclusive ranges.
    fn from_str(text: &str) -> Result<CpuList, String> {
        let mut cpus = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let parse = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("'{s}' in cpu list '{text}' is not a CPU number"))
            };
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (parse(first)?, parse(last)?);
                    if first > last {
                        return Err(format!("range '{part}' in cpu list '{text}' is reversed"));
                    }
                    if last >= libc::CPU_SETSIZE as usize {
                        return Err(format!("CPU {last} in cpu list '{text}' is out of range"));
                    }
                    cpus.extend(first..=last);
                }
                None => cpus.push(parse(part)?),
            }
        }
        if cpus.is_empty() {
            return Err(format!("cpu list '{text}' names no CPU"));
        }
        Ok(CpuList::new(cpus))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let start = self.0[i];
            let mut end = start;
            while i + 1 < self.0.len() && self.0[i + 1] == end + 1 {
                i += 1;
                end = self.0[i];
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges_and_prints_them_back() {
        let list: CpuList = "3, 0-1,5-6,1".parse().unwrap();
        assert_eq!(list.as_slice(), &[0, 1, 3, 5, 6]);
        assert_eq!(list.to_string(), "0-1,3,5-6");
    }

    #[test]
    fn rejects_garbage_reversed_ranges_and_empty_lists() {
        assert!(
            "a".parse::<CpuList>()
                .unwrap_err()
                .contains("not a CPU number")
        );
        assert!("3-1".parse::<CpuList>().unwrap_err().contains("reversed"));
        assert!("".parse::<CpuList>().unwrap_err().contains("names no CPU"));
        assert!(
            "0-99999"
                .parse::<CpuList>()
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn a_pinned_thread_and_the_threads_it_starts_run_on_the_pinned_cpus_only() {
        let all = CpuList::from_affinity().unwrap();
        let last = CpuList::new(vec![*all.as_slice().last().unwrap()]);
        let (here, child) = std::thread::spawn(move || {
            last.pin_current_thread().unwrap();
            let child = std::thread::spawn(|| CpuList::from_affinity().unwrap())
                .join()
                .unwrap();
            (CpuList::from_affinity().unwrap(), child)
        })
        .join()
        .unwrap();
        assert_eq!(here.as_slice(), &[*all.as_slice().last().unwrap()]);
        assert_eq!(child, here, "a thread started after the pin inherits it");
        let offline = CpuList::new(vec![libc::CPU_SETSIZE as usize - 1]);
        assert!(
            std::thread::spawn(move || offline.pin_current_thread())
                .join()
                .unwrap()
                .is_err(),
            "a set with no usable CPU is refused"
        );
    }

    #[test]
    fn the_affinity_mask_is_not_empty() {
        assert!(!CpuList::from_affinity().unwrap().is_empty());
    }
}
