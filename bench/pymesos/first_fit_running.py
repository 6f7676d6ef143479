#!/usr/bin/env python3
"""The pymesos (0.3.15) peer of drover-bench: a first-fit scheduler, a variant of
tests/pymesos/first_fit.py, that launches N long-running tasks (0.1 cpu, 32 MB,
`sleep 100000`) and, once every one is TASK_RUNNING, prints one JSON line
{"created": <unix time before the driver started>, "observed": <unix time it saw the
last RUNNING>, "running": N} and keeps its
subscription (so the tasks stay up for the benchmark to read their times) until killed.

usage: first_fit_running.py HOST:PORT N
"""
import collections, getpass, json, logging, socket, sys, time
from pymesos import MesosSchedulerDriver, Scheduler

CPUS, MEM = 0.1, 32.0


def scalar(offer, name):
    return sum(r['scalar']['value'] for r in offer.get('resources', []) if r['name'] == name and 'scalar' in r)


class FirstFit(Scheduler):
    def __init__(self, n, created):
        self.pending = collections.deque('task-%d' % i for i in range(n))
        self.n, self.created, self.running, self.reported = n, created, set(), False

    def resourceOffers(self, driver, offers):
        for offer in offers:
            cpus, mem, tasks = scalar(offer, 'cpus'), scalar(offer, 'mem'), []
            while self.pending and cpus >= CPUS - 1e-6 and mem >= MEM - 1e-6:
                tid = self.pending.popleft()
                tasks.append(dict(name=tid, task_id=dict(value=tid), agent_id=offer['agent_id'],
                                  resources=[dict(name='cpus', type='SCALAR', scalar=dict(value=CPUS)),
                                             dict(name='mem', type='SCALAR', scalar=dict(value=MEM))],
                                  command=dict(value='sleep 100000', shell=True)))
                cpus, mem = cpus - CPUS, mem - MEM
            if tasks:
                driver.launchTasks(offer['id'], tasks)
            else:
                driver.declineOffer(offer['id'], dict(refuse_seconds=60.0))

    def statusUpdate(self, driver, status):  # pymesos acknowledges after this returns
        if status['state'] == 'TASK_RUNNING':
            self.running.add(status['task_id']['value'])
        if len(self.running) >= self.n and not self.reported:
            self.reported = True
            print(json.dumps({'created': self.created, 'observed': time.time(), 'running': len(self.running)}),
                  flush=True)

    def error(self, driver, message):
        logging.error('master error: %s', message)


if __name__ == '__main__':
    logging.basicConfig(level=logging.WARNING)
    created = time.time()
    framework = dict(user=getpass.getuser(), name='pymesos-first-fit', hostname=socket.gethostname())
    MesosSchedulerDriver(FirstFit(int(sys.argv[2]), created), framework, sys.argv[1]).run()
