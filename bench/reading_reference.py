# An independent PyTorch reference of issue 16's prototype recipe (deviation 11 in
# notebooks/experiments/016-reading-preregistration.md), trained on a world exported by bench/export-world.ts:
# LLaMA d128 L3 H4 (SwiGLU 352, RoPE, RMSNorm, tied head), an optional canon convolution (CANON, width) on each
# block's normed attention input (POS=A; POS=ABCD adds Allen-Zhu's other three: B on the q/k/v projections, C on
# the normed MLP input, D on the MLP's gate and up projections, each zero-initialised and residual), one document per row (PACK=one) or several with attention kept inside each
# (PACK=many), padding unscored, lr cosine with 3% warmup, AdamW (WD, betas 0.9 / B2), clip 1, batch 8 x 128.
# It shares no code with the TypeScript stack. Probes held-out and counterfactual English QA (greedy, contains)
# at every quarter of TOKENS and appends one JSON line per probe to OUT.
#
#   SEED=1 TOKENS=4e6 DIR=/tmp/proto/x4 /usr/bin/python3 bench/reading_reference.py
import torch, math, random, sys, os, json, time
import numpy as np
import torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
E=lambda k,d: type(d)(os.environ.get(k,d))
OUT=os.environ.get("OUT","/tmp/proto/results.jsonl"); CANON=E("CANON",4); TOKENS=E("TOKENS",4e6); SEED=E("SEED",1); DIR=E("DIR","/tmp/proto/x4"); LR=E("LR",3e-3); PACK=E("PACK","one"); WD=E("WD",0.1); B2=E("B2",0.95); POS=E("POS","A")
torch.manual_seed(SEED); rnd=random.Random(SEED)
meta=json.load(open(f"{DIR}/meta.json")); V=len(meta["vocab"]); PAD=meta["pad"]; BOS=meta["bos"]
D,L,H,T,B=128,3,4,128,8
flat=np.fromfile(f"{DIR}/docs.bin",dtype=np.int32); lens=np.fromfile(f"{DIR}/lens.bin",dtype=np.int32); offs=np.concatenate([[0],np.cumsum(lens)])
docs=[flat[offs[i]:offs[i+1]] for i in range(len(lens))]
class RMS(nn.Module):
    def __init__(s,d): super().__init__(); s.w=nn.Parameter(torch.ones(d))
    def forward(s,x): return x*torch.rsqrt(x.pow(2).mean(-1,keepdim=True)+1e-5)*s.w
hd=D//H; inv=1.0/(10000**(torch.arange(0,hd,2).float()/hd))
def rope(x,pos):
    f=pos[...,None].float()*inv; emb=torch.cat([f,f],-1); c,s=emb.cos()[:,None],emb.sin()[:,None]
    x1,x2=x[...,:hd//2],x[...,hd//2:]; return x*c+torch.cat([-x2,x1],-1)*s
class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.n1=RMS(D); s.n2=RMS(D); s.q=nn.Linear(D,D,bias=False); s.k=nn.Linear(D,D,bias=False); s.v=nn.Linear(D,D,bias=False); s.o=nn.Linear(D,D,bias=False)
        s.g=nn.Linear(D,352,bias=False); s.u=nn.Linear(D,352,bias=False); s.d=nn.Linear(352,D,bias=False)
        widths={"A":D,"B":3*D,"C":D,"D":2*352}
        s.canon=nn.ParameterDict({p:nn.Parameter(torch.zeros(CANON,widths[p])) for p in POS}) if CANON else {}
    def conv(s,p,x,same):
        # causal depthwise convolution over the last CANON positions of the same document, added to its input
        if p not in s.canon: return x
        w=s.canon[p]; xp=F.pad(x,(0,0,CANON-1,0)); t=x.shape[1]
        return x+sum(xp[:,CANON-1-k:CANON-1-k+t]*w[k]*same[k] for k in range(CANON))
    def forward(s,h,pos,mask,same):
        x=s.conv("A",s.n1(h),same)
        b,t,_=x.shape
        qkv=s.conv("B",torch.cat([s.q(x),s.k(x),s.v(x)],-1),same); q,k,v=qkv.split(D,-1)
        q=q.reshape(b,t,H,hd).transpose(1,2); k=k.reshape(b,t,H,hd).transpose(1,2); v=v.reshape(b,t,H,hd).transpose(1,2)
        q=rope(q,pos); k=rope(k,pos)
        a=(q@k.transpose(-1,-2))/math.sqrt(hd); a=a.masked_fill(~mask,-1e9).softmax(-1)
        h=h+s.o((a@v).transpose(1,2).reshape(b,t,D))
        x=s.conv("C",s.n2(h),same); gu=s.conv("D",torch.cat([s.g(x),s.u(x)],-1),same); g,u=gu.split(352,-1)
        return h+s.d(F.silu(g)*u)
class M(nn.Module):
    def __init__(s):
        super().__init__(); s.e=nn.Embedding(V,D); s.b=nn.ModuleList([Block() for _ in range(L)]); s.n=RMS(D)
        for n,p in s.named_parameters():
            if p.dim()==2 and "canon" not in n: nn.init.normal_(p,0,0.02)
    def forward(s,ids,seg=None):
        b,t=ids.shape
        if seg is None: seg=torch.zeros(b,t,dtype=torch.long)
        # positions restart at each document; attention stays inside it
        start=torch.ones(b,t,dtype=torch.long); start[:,1:]=(seg[:,1:]!=seg[:,:-1]).long()
        idx=torch.arange(t)[None].expand(b,t); first=torch.cummax(torch.where(start.bool(),idx,torch.zeros_like(idx)),1).values; pos=idx-first
        mask=(torch.ones(t,t,dtype=torch.bool).tril()[None]&(seg[:,:,None]==seg[:,None,:]))[:,None]
        same=[torch.ones(b,t,1)]+[F.pad((seg[:,k:]==seg[:,:-k]).float(),(k,0))[...,None] for k in range(1,CANON)]
        h=s.e(ids)
        for bl in s.b: h=bl(h,pos,mask,same)
        return s.n(h)@s.e.weight.T
m=M()
order=list(range(len(docs))); rnd.shuffle(order); cur=[0]
def nextdoc():
    if cur[0]>=len(order): rnd.shuffle(order); cur[0]=0
    d=docs[order[cur[0]]]; cur[0]+=1; return d[:T+1]
def batch():
    X=torch.full((B,T+1),PAD,dtype=torch.long); S=torch.full((B,T+1),-1,dtype=torch.long); real=0
    for r in range(B):
        at=0; sid=0
        while True:
            d=nextdoc(); n=len(d)
            if at+n>T+1 and at>0: cur[0]-=1; break
            X[r,at:at+n]=torch.from_numpy(d.astype(np.int64)); S[r,at:at+n]=sid; sid+=1; at+=n; real+=n-1
            if PACK=="one": break
    x,y=X[:,:-1],X[:,1:].clone(); seg=S[:,:-1].clone()
    y[(S[:,1:]!=S[:,:-1])|(S[:,1:]<0)]=-100
    seg[seg<0]=10**6
    return x,y,seg,real
pieces={i:p for p,i in meta["vocab"].items()}
def decode(ids): return "".join(pieces.get(int(i),"?") for i in ids).replace("▁"," ")
def qa(name,n=200):
    items=[json.loads(l) for l in open(f"{DIR}/{name}")][:n]; ok=0
    with torch.no_grad():
        for it in items:
            ids=list(it["ids"])
            for _ in range(8):
                nx=int(m(torch.tensor([ids]))[0,-1].argmax()); ids.append(nx)
                if nx==meta["eos"]: break
            out=decode(ids[len(it["ids"]):]).strip(); out=out.split(".")[0].split("?")[0].strip()
            ok+= int(it["gold"].lower() in out.lower()) if out else 0
    return ok/len(items)
decay=[p for n,p in m.named_parameters() if p.dim()==2 and "canon" not in n]; nod=[p for n,p in m.named_parameters() if not (p.dim()==2 and "canon" not in n)]
opt=torch.optim.AdamW([{"params":decay,"weight_decay":WD},{"params":nod,"weight_decay":0}],lr=LR,betas=(0.9,B2))
seen=0; t0=time.time(); step=0; nexteval=TOKENS/4
def lrf(): w=0.03*TOKENS; f=seen/w if seen<w else 0.5*(1+math.cos(math.pi*min(1,(seen-w)/(TOKENS-w)))); return LR*max(f,0.0)
run=f"proto canon{CANON}{'' if POS=='A' else POS} pack{PACK} seed{SEED} lr{LR} wd{WD} b2{B2} tok{TOKENS:g} {DIR}"
print(run,flush=True)
while seen<TOKENS:
    for g in opt.param_groups: g["lr"]=lrf()
    x,y,seg,real=batch(); logits=m(x,seg); loss=F.cross_entropy(logits.reshape(-1,V),y.reshape(-1),ignore_index=-100)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(),1.0); opt.step(); seen+=real; step+=1
    if step%200==0: print(step,int(seen),round(loss.item(),3),int(time.time()-t0),"s",flush=True)
    if seen>=nexteval or seen>=TOKENS:
        nexteval+=TOKENS/4; m.eval(); r={"run":run,"step":step,"tokens":int(seen),"en":qa("xquad.en.jsonl"),"cf":qa("counterfactual.en.jsonl",150),"s":int(time.time()-t0)}; m.train()
        print(json.dumps(r),flush=True); open(OUT,"a").write(json.dumps(r)+"\n")
